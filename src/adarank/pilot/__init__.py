"""``adarank pilot``: the cheapest LoRA configuration that is not worse than the user's, decided with a test.

:mod:`.config` declares the settings, :mod:`.arms` the user's config and the cheaper arms, :mod:`.runner` the
sweeps, evaluations and resume; :mod:`.decision`, :mod:`.report` and :mod:`.recommend` hold the statistics.
"""
