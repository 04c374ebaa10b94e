"""Stand-alone implementations used to exercise ``refloss verify --impl``."""
