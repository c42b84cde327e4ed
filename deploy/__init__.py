"""Deployment files; a package only so tests can import deploy.local helpers."""
