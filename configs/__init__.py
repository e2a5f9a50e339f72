"""retrodojo's shipped configs, installed as the package ``retrodojo_configs`` (see wrappers/configs.py).

``games/`` holds game profiles, ``neat/`` neat-python configs, ``experiments/`` experiment files.
"""
