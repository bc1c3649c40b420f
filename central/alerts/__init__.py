"""Alert routing and receivers of the central service (see docs/alerts.md).

The seam: ``AlertEngine(config, clock).on_transition(Transition(...))`` and ``await
engine.run()``; ``config`` comes from ``central.alerts.config.parse(section, file)``.
"""

from central.alerts.config import AlertsConfig, parse
from central.alerts.engine import AlertEngine
from central.alerts.model import Alert, Severity, Silence, SilenceKind, Subject, Transition

__all__ = [
    "Alert",
    "AlertEngine",
    "AlertsConfig",
    "Severity",
    "Silence",
    "SilenceKind",
    "Subject",
    "Transition",
    "parse",
]
