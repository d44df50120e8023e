"""File and text formats shared by every layer above: YAML with line numbers
(:mod:`.yaml_lines`), JSON-Schema messages and the one "first error (and N more)" summary
(:mod:`.schema_messages`), atomic file writes and reads (:mod:`.files`), and dataclasses as
camelCase JSON objects (:mod:`.camel`).

Imports only :mod:`dynamo_plan.errors` from this package (and PyYAML/jsonschema), so both
``deploy`` and ``live`` can use it (see the ladder in :mod:`dynamo_plan`).
"""
