"""Bringing existing videos into a Moviola library, and taking them out again.

Sources are folders, ZIP archives (`sources`) and other Videos-API servers (`remote`); what is
known about each video besides its bytes is gathered by `metadata`; `library` writes videos in
(their files put together in `staging`, their rows built by `rows`, their remix links made by
`lineage`) so that an import can be killed at any point and run again; `export` writes a
library out in the format `manifest` defines, which an import reads back without loss.
"""
