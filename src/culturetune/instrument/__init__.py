"""The instrument: VSM 2013 items, wordings, option orders, country targets and scoring."""
