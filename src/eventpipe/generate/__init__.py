"""Realistic (and, on request, dirty) REES46-style event files for demos, tests and benchmarks."""

from eventpipe.generate.dirty import Corruption, DirtyKind
from eventpipe.generate.output import GeneratedFiles, generate_files

__all__ = ["Corruption", "DirtyKind", "GeneratedFiles", "generate_files"]
