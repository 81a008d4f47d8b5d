"""Japanese calendar dates (和暦): the era table and formatting; parsing arrives with the linkage."""
