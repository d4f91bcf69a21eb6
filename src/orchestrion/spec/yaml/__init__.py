"""The YAML authoring format: a workflow file read with line marks, translated into the spec's shape
and checked, with errors that point at the line (`orchestrion.spec.yaml.loader` is the way in)."""
