"""The migration linter: rules over pglast's parse tree, suppression, output formats."""
