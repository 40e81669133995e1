"""The reliability suite: one module per class of fault, attacker and careless user alike.

| fault class | here | also |
|---|---|---|
| bad input | test_bad_input.py | tests/pipeline/test_exclusions.py (each dropped record named) |
| kill and resume | test_kill_resume.py | tests/trainer/test_train.py (train --resume, refuse retraining) |
| tamper | test_tamper.py | tests/manifests/test_manifests.py (entries, header hash, shards, deep re-tokenize), tests/audit/test_cli.py (--strict) |
| traversal | test_traversal.py | tests/manifests (entry paths), tests/audit/test_sandbox.py (symlinks, other directories) |
| SQL escape | test_sql_escape.py | tests/mixtures/test_sandbox.py, tests/audit/test_sandbox.py |
| resource limits | test_resource_limits.py | tests/audit/test_cli.py (time limit, Ctrl-C, memory limit) |
| stale input | test_stale_input.py | |
| orphan processes | test_orphans.py | |
"""
