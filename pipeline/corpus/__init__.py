"""Reading a corpus: its layout (format, header, columns), record splitting of text files, field
parsing of one record, and the Beam source that ties them together for the ``read`` stage."""
