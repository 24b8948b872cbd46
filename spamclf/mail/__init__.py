"""Reading mail: every input format, MIME parsing, text extraction, labelled data."""
