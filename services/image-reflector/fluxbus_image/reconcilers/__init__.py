"""The image-reflector service's reconcilers: one `StepReconciler[Kind, KindState]` per kind
(ImageRepository, ImagePolicy and ImageUpdateAutomation), each in a module of its own."""
