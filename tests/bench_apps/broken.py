"""An app that cannot start: what the harness shows of a start-up failure is the app's own error."""

raise RuntimeError("tiny: no database configured")
