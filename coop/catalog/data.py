"""The legal crops and grades Minga trades (domain.md, "Crops"). Loaded by a data migration."""

CROPS = [
    ("coffee", "Coffee (parchment)", "Café pergamino", [
        ("fnc94", "FNC standard, yield factor 94", "Estándar FNC, factor de rendimiento 94"),
        ("sca80", "Specialty, SCA 80–84", "Especial, SCA 80–84"),
        ("sca85", "Excellent, SCA 85–89", "Excelente, SCA 85–89"),
        ("sca90", "Outstanding, SCA 90+", "Sobresaliente, SCA 90+"),
    ]),
    ("coffee-green", "Coffee (green)", "Café verde", [
        ("excelso", "Excelso", "Excelso"),
        ("supremo", "Supremo", "Supremo"),
    ]),
    ("cacao", "Cacao (fermented dry beans)", "Cacao (grano seco fermentado)", [
        ("export", "Export: >80% fermented, <7% moisture, <1% slaty",
         "Exportación: >80% fermentado, <7% humedad, <1% pizarroso"),
        ("fine", "Fine flavour", "Fino de aroma"),
        ("ordinary", "Ordinary (corriente)", "Corriente"),
    ]),
    ("avocado", "Avocado (Hass)", "Aguacate Hass", [
        ("extra", "Extra", "Extra"),
        ("first", "First", "Primera"),
        ("second", "Second", "Segunda"),
    ]),
    ("vanilla", "Vanilla (cured pods)", "Vainilla (vainas curadas)", [
        ("gourmet", "Gourmet, grade A", "Gourmet, grado A"),
        ("extract", "Extract, grade B", "Extracción, grado B"),
    ]),
    ("passion-fruit", "Passion fruit", "Maracuyá", [
        ("extra", "Extra", "Extra"),
        ("first", "First", "Primera"),
    ]),
    ("macadamia", "Macadamia (nut in shell)", "Macadamia (nuez con cáscara)", [
        ("standard", "Standard", "Estándar"),
    ]),
    ("achiote", "Achiote (annatto seed)", "Achiote (semilla)", [
        ("standard", "Standard", "Estándar"),
    ]),
    ("plantain", "Plantain", "Plátano", [
        ("first", "First", "Primera"),
        ("second", "Second", "Segunda"),
    ]),
    ("honey", "Honey", "Miel", [
        ("multifloral", "Multifloral", "Multifloral"),
    ]),
]

# Names under which people may try to list an illicit crop. Matched after normalising
# case, accents, spaces and hyphens.
PROHIBITED = {
    "coca": "coca", "coca_leaf": "coca", "hoja_de_coca": "coca", "erythroxylum": "coca",
    "opium_poppy": "opium_poppy", "opium": "opium_poppy", "poppy": "opium_poppy",
    "amapola": "opium_poppy", "adormidera": "opium_poppy", "papaver_somniferum": "opium_poppy",
    "cannabis": "cannabis", "marijuana": "cannabis", "marihuana": "cannabis",
    "hemp_thc": "cannabis", "cannabis_sativa": "cannabis",
}
