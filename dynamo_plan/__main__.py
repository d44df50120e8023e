"""``python -m dynamo_plan`` — the same CLI as the ``dynamo-plan`` console script."""

from dynamo_plan.cli.app import main

main()
