"""Blueprints of the domains added after the foundation."""


def extra_blueprints():
    from .payments.views import bp as payments_bp
    from .pools.views import bp as pools_bp
    from .ledger.views import bp as ledger_bp
    from .pricing.views import bp as pricing_bp
    from .payouts.views import bp as payouts_bp
    from .treasury.views import bp as treasury_bp
    from .intake.views import bp as intake_bp
    from .shares.views import bp as shares_bp
    from .impact.views import bp as impact_bp
    return [pricing_bp, pools_bp, payments_bp, ledger_bp, payouts_bp,
            treasury_bp, intake_bp, shares_bp, impact_bp]


def extra_commands():
    from .ledger.commands import ledger_cli
    from .pools.commands import pools_cli
    from .intake.commands import intake_cli
    return [pools_cli, ledger_cli, intake_cli]


def extra_demo_steps():
    from .pools.demo import seed as seed_pools
    return [seed_pools]


def dev_setup_steps():
    def start_stripe_sandbox():
        import os

        from .payments.sandbox import ensure_dev_sandbox
        port = os.environ.get("PORT", "5000")
        sandbox = ensure_dev_sandbox(os.environ.get("MINGA_ENV", "development"),
                                     webhook_url=f"http://127.0.0.1:{port}/stripe/webhook")
        if sandbox is not None:
            print(f"Stripe sandbox (localstripe) on {sandbox.api_base}; test card pm_card_visa")
    return [start_stripe_sandbox]
