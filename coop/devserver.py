"""`make run`: serve the demo on http://127.0.0.1:5000 (starting the Stripe sandbox if needed)."""
from __future__ import annotations

import os

from . import create_app


def main() -> None:
    from .blueprints import dev_setup_steps
    for step in dev_setup_steps():
        step()
    app = create_app(os.environ.get("MINGA_ENV", "development"))
    app.run(host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "5000")),
            debug=False, threaded=True)


if __name__ == "__main__":
    main()
