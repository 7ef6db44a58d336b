import os

# Every test (and every notebook nbmake runs from this process) uses the small preset.
os.environ.setdefault("MINILLM_PRESET", "smoke")
