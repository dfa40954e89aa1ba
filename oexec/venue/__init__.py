"""Venue adapters. Each implements the ``Venue``/``UserStream`` ports of oexec.service.ports."""
