"""Task kinds that ship with Orchestrion and implement `orchestrion.spec.kinds.TaskKind`,
the interface third-party kinds implement too (``sql``). Each module imports only the spec
at module level; its client libraries are imported when a task of the kind runs."""
