"""mconv core: the framework-free IR, registries, rewrite engine, pipeline, verification and CLI.

Nothing in this package imports torch or tensorflow at module level, so ``mconv --help`` stays
fast; frontends and runtimes import their framework inside the functions that need it.
"""

__version__ = "0.1.0"
