"""Reusable task templates: versioned libraries of parameterised task bodies that workflows
use by reference (``uses: lib/transfer@2``), expanded at load time (see ``docs/templates.md``).

`orchestrion.spec.templates.library` holds the library model, `.search` where libraries are
found, `.expand` how a use becomes a concrete task body; the record a task keeps of its
template is `orchestrion.spec.template_origin` (imported by the spec model). Library files
and the YAML translation are `orchestrion.spec.yaml.libraries`.
"""
