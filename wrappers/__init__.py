"""The game side of retrodojo: ROM store, env factory, wrappers and game profiles."""
