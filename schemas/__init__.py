"""Avro schemas (.avsc) of every Freight event and record; a package only so they ship as package data."""
