"""After the search: the final model (``raytuner refit``) and its predictions (``raytuner predict``)."""
