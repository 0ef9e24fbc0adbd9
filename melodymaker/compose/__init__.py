"""The symbolic composer: genre styles as data, music theory helpers, the library builder."""
