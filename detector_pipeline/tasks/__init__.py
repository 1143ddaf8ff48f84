"""The work of each Dagster asset as plain functions over tables and files, one module per
`defs/assets` module. No Dagster here: each step runs and is tested on its own."""
