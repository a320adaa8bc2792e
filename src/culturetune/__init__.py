"""culturetune: align a frozen language model with a country's culture (Hofstede's dimensions)."""

__version__ = "0.1.0"
