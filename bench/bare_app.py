"""The bare Flask endpoint `bench/throughput.py` measures Minga against: 10 KB of text, no
database, no templates, no extensions."""
from flask import Flask

BODY = ("x" * 99 + "\n") * 100 + "y" * 240  # 10,240 bytes

app = Flask(__name__)


@app.get("/")
def bare():
    return BODY, 200, {"Content-Type": "text/plain; charset=utf-8"}
