"""The subcommands of ``scratchvae``, one module each: ``add_parser(subparsers)`` registers it."""
