"""The common database (共通データベース): residents, households and their attributes (資格・受給)."""
