"""Madoguchi card reader agent for counter PCs.

Reads the four card-face items (name, address, birth date, sex) of a My Number Card through PC/SC
with the visitor's 4-digit PIN and posts them to the Madoguchi service with the device token. It
never reads the My Number (個人番号) itself; see ``madoguchi_card_agent.card``.
"""

__version__ = "0.1.0"
