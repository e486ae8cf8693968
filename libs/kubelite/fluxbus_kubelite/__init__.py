"""kubelite: a Kubernetes API server in Python for development and tests.

`KubeliteServer` runs it in-process; `fluxbus-kubelite` runs it standalone;
`fluxbus_kubelite.testing` offers pytest fixtures. See kubelite.md for the
behaviour it implements and libs/kubelite/README.md for what it simulates
(controllers, run-to-completion Pods and Jobs, pod logs).
"""

from .controllers import SimulationConfig
from .server import KubeliteServer, write_kubeconfig

__all__ = ["KubeliteServer", "SimulationConfig", "write_kubeconfig"]
