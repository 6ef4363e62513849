"""Google Cloud Speech-to-Text v1/v1p1beta1 REST, with Mod9's unprefixed paths and extensions."""
