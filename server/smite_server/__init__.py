"""The SMITE daemon: a local GPU server over ZeroMQ that keeps the backbone warm and runs learn/segment
jobs for host plugins and farms. Protocol: docs/protocol.md; client: ``smite.client``."""
