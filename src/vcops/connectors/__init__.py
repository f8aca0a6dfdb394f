"""Connectors: every byte vcops sends to a server or device goes through here."""
