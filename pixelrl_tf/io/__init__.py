"""File input and output shared by the whole project.

  * `images`: the one image reader (`read_image`, float32 `[H, W, C]` on
    0..1) and writer (`write_image`), the list of image suffixes and the
    official 8-bit quantiser `quantize_uint8`. numpy and OpenCV only.
  * `files`: atomic writes of text and bytes (`write_text_atomically`,
    `write_bytes_atomically`) and of whole folders (`atomic_directory`).
    Standard library only.

Neither module imports TensorFlow, so command-line tools can read and write
images before (or without) starting TensorFlow.
"""
