"""The synthetic demo challenge (`generate`) and `comp demo`, which runs it end to end."""
