"""The training stage: CLEAN shards -> a trained image-text model in a run directory.

Entry functions (each takes one typed config and returns a path):
  * ``training.train.train(TrainConfig) -> run dir``   (DDP under torchrun; ``training.launch.launch_torchrun``)
  * ``training.evaluate.evaluate(EvalConfig) -> eval.json``
Modules are imported lazily by the CLI (``flows/commands/train.py``); importing this package imports nothing heavy.
"""
