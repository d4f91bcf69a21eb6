"""Workflows as data: the spec model that Python and YAML authoring both compile to, its loaders,
and the sandboxed expressions its fields may hold. Nothing here runs a workflow: importing it needs
no server, database or worker."""
