"""Procedure guidance (手続きガイダンス): catalogues, rules, facts and the determiner."""
