"""Bringing a district in from the Excel sheets it already has (issue: run a real district).

read.py turns an uploaded .xlsx or .csv into rows (refusing what is not a plain
workbook); normalise.py cleans the mess real sheets carry; sheets.py says which sheets and
columns there are. Each layer is pure and testable without Flask.
"""
