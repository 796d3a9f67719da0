"""The Teams app package: the manifest template, the icons (drawn in code) and the builder.

`python -m manifest` (or `make package`) writes build/watchword-teams.zip; the admin console serves the same
bytes from `manifest.package.package_bytes`.
"""
