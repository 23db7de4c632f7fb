"""One module per rule. Rules are found by walking this package (`asyncguard.lint.rule.all_rules`)."""
