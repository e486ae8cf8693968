"""The notifier service's reconcilers: one `StepReconciler[Kind, KindState]` per kind
(Provider, Alert and Receiver), each in a module of its own."""
