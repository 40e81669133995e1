"""The reliability suite: one module per class of fault, attacker and careless user alike.

- bad input: test_bad_input.py (also tests/pipeline/test_exclusions.py: each dropped record named)
- kill and resume: test_kill_resume.py (also tests/trainer/test_train.py: train --resume, no silent retrain)
- tamper: test_tamper.py (also tests/manifests/test_manifests.py: entries, header hash, deep re-tokenize;
  tests/audit/test_cli.py: --strict)
- traversal: test_traversal.py (also tests/manifests: entry paths; tests/audit/test_sandbox.py: symlinks)
- SQL escape: test_sql_escape.py (also tests/mixtures/test_sandbox.py, tests/audit/test_sandbox.py)
- resource limits: test_resource_limits.py (also tests/audit/test_cli.py: time limit, Ctrl-C, memory limit)
- stale input: test_stale_input.py
- orphan processes: test_orphans.py
"""
