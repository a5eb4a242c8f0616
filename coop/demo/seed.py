"""Demo data (`flask seed-demo`): two cooperatives, their people and realistic listings, then
the prices and open pools of coop/demo/pools.py."""
from __future__ import annotations

import random
from decimal import Decimal
from datetime import date, timedelta

from sqlalchemy import select

from ..auth import services as auth_services
from ..auth.models import Buyer, User
from ..cooperatives import services as coop_services
from ..plots import services as plots_services
from ..cooperatives.models import Cooperative
from ..extensions import db
from ..listings import services as listing_services
from .plots import seed_plots
from .pools import seed as seed_pools

PASSWORD = "minga-demo-pass"
FIRST = ["María", "José", "Luz Dary", "Jhon Fredy", "Ana Milena", "Wilson", "Yaneth", "Edinson",
         "Rosa", "Hernán", "Marleny", "Arley", "Dora", "Fabio", "Gloria", "Luis Alberto",
         "Nubia", "Orlando", "Sandra", "Ramiro"]
LAST = ["Quintero", "Muñoz", "Chantre", "Guerrero", "Ortiz", "Benavides", "Cuéllar", "Rivera",
        "Mamián", "Jiménez", "Huamán", "Quispe", "Flores", "Mendoza", "Rojas", "Pari"]
FEMALE = {"María", "Luz Dary", "Ana Milena", "Yaneth", "Rosa", "Marleny", "Dora", "Gloria",
          "Nubia", "Sandra"}


def _user(email, name, pw_hash, phone=None):
    user = db.session.scalar(select(User).where(User.email == email))
    if user is None:
        user = User(email=email, name=name, password_hash=pw_hash, phone=phone, locale="es")
        db.session.add(user)
        db.session.flush()
    return user


def _coop(founder, name, country, currency, region):
    coop = db.session.scalar(select(Cooperative).where(Cooperative.name == name))
    if coop is None:
        # The demo's coops are verified (as if Minga's staff had reviewed them).
        coop = coop_services.create_verified_cooperative_for_seed(
            founder=founder, name=name, country=country, currency=currency, region=region)
    return coop


def seed_demo() -> bool:
    """Create the demo once; running it again changes nothing and returns False."""
    if db.session.scalar(select(User.id).where(User.email == "manager@example.org")):
        return False
    rng = random.Random(79)
    pw_hash = auth_services.hash_password(PASSWORD)
    today = date.today()
    plans = [
        ("Cooperativa Nuevo Horizonte", "CO", "COP", "Cauca, Colombia", "", 1, 30,
         ["coffee", "cacao"], ["nequi", "daviplata", "breb", "bank", "cash"],
         ["Vereda El Tambo", "Piendamó centro", "La Sierra"]),
        ("Cooperativa Valle Verde", "PE", "PEN", "VRAEM, Ayacucho", "2", 31, 40,
         ["cacao", "coffee"], ["yape", "plin", "bank", "cash"],
         ["Pichari", "Santa Rosa", "Llochegua"]),
    ]
    for (name, country, currency, region, suffix, first, last, crops, rails, points) in plans:
        manager = _user(f"manager{suffix}@example.org", f"Gerente {name.split()[-1]}", pw_hash)
        treasurer = _user(f"treasurer{suffix}@example.org", f"Tesorería {name.split()[-1]}",
                          pw_hash)
        coop = _coop(manager, name, country, currency, region)
        coop_services.grant_role(coop, treasurer, "treasurer")
        for point in points:
            if coop_services.collection_point_named(coop.id, point) is None:
                coop_services.add_collection_point(coop, name=point, place=region)
        for n in range(first, last + 1):
            given = FIRST[(n * 7) % len(FIRST)]
            full = f"{given} {LAST[(n * 3) % len(LAST)]} {LAST[(n * 5 + 1) % len(LAST)]}"
            phone = (f"573{n:09d}" if country == "CO" else f"519{n:08d}")
            user = _user(f"farmer{n}@example.org", full, pw_hash, phone="+" + phone)
            rail = rails[n % len(rails)]
            account = {"nequi": phone[2:], "daviplata": phone[2:], "yape": phone[2:],
                       "plin": phone[2:], "breb": f"{10_000_000 + n * 137}",
                       "bank": f"{4_000_000_000 + n * 7919}", "cash": ""}[rail]
            profile = coop_services.add_farmer(
                coop, name=full, email=user.email, password=PASSWORD, phone=None,
                member_number=f"{country}-{n:04d}", national_id=f"{10_000_000 + n * 9_871}",
                payout_rail=rail, payout_account=account,
                bank_name="Banco Agrario" if rail == "bank" and country == "CO" else
                ("Banco de la Nación" if rail == "bank" else ""),
                gender="female" if given in FEMALE else "male",
                household_size=rng.randint(2, 7),
                # The identity document of the weekly purchase documents (made up, 8 digits:
                # a cédula in Colombia, a DNI in Peru).
                tax_id_type="CC" if country == "CO" else "DNI",
                tax_id=f"{10_000_000 + n * 9_871}")
            hectares = rng.choice(["1.5", "2", "2.5", "3", "4", "1.2"])
            farm = plots_services.add_plot(profile, name=f"Finca {LAST[n % len(LAST)]}",
                                   hectares=hectares, replaced_crop="coca",
                                   illicit_hectares=str(min(Decimal(hectares), Decimal(
                                       rng.choice(["0.5", "1", "1.5", "2"])))),
                                   licit_crop=crops[n % 2])
            lower = None
            if n % 4 == 0:
                lower = plots_services.add_plot(profile, name="Lote de abajo", hectares="0.8",
                                       replaced_crop=None, illicit_hectares="0",
                                       licit_crop=crops[(n + 1) % 2])
            for k in range(1 + n % 2):
                crop = crops[(n + k) % 2]
                grade = {"coffee": ["fnc94", "sca80", "sca85"],
                         "cacao": ["export", "fine", "ordinary"]}[crop][(n + k) % 3]
                kg = rng.choice([120, 250, 380, 500, 640, 800, 1000]) + rng.choice([0, 0.5])
                listing_services.create_listing(
                    user, crop=crop, grade=grade, quantity_kg=str(kg), coop_id=coop.id,
                    harvested_on=today - timedelta(days=rng.randint(3, 60)),
                    collection_point=points[n % len(points)],
                    # The harvest's plots (the EUDR traces coffee and cacao to them): the
                    # farm, and the lower plot too for its second crop.
                    plot_ids=[farm.id] + ([lower.id] if lower is not None and k else []))
    for n in range(1, 6):
        email = f"buyer{n}@example.org"
        org = ["Tostadores del Sur", "Chocolates Andinos", "Bean & Bar Imports",
               "Mercado Justo", "Café Origen"][n - 1]
        user = _user(email, f"Compras {org}", pw_hash)
        if user.buyer_id is None:
            buyer = Buyer(organisation=org)
            db.session.add(buyer)
            db.session.flush()
            user.buyer_id = buyer.id
        # The billing details a buyer gives before a first order (the demo's are made up).
        from ..invoices import services as invoices
        if not invoices.has_billing(user.buyer_id):
            country, tax_id = [("DE", "DE811234560"), ("CO", "900123456-8"),
                               ("US", "12-3456789"), ("PE", "20100070970"),
                               ("NL", "NL123456789B01")][n - 1]
            invoices.save_billing(user.buyer_id, legal_name=f"{org} Ltda.", tax_id=tax_id,
                                  country=country, address=f"Calle {n} # 10-20")
    seed_plots()
    seed_pools()
    db.session.commit()
    return True
