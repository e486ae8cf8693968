"""The image-reflector service's reconcilers, one per kind."""

from fluxbus_image.reconcilers.imagepolicy import ImagePolicyReconciler
from fluxbus_image.reconcilers.imagerepository import ImageRepositoryReconciler
from fluxbus_image.reconcilers.imageupdateautomation import ImageUpdateAutomationReconciler

__all__ = [
    "ImagePolicyReconciler",
    "ImageRepositoryReconciler",
    "ImageUpdateAutomationReconciler",
]
