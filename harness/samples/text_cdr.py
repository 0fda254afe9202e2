"""Team-written BC5CDR-style abstracts (original text; concept ids are synthetic, D9xxxxx/C9xxxxx).

Each document: title, abstract, mentions {surface string: (type, concept name(s) | None, individual
strings | None)}, relations [(chemical concept, disease concept)], and `trailing_tab` (write the
7th column empty, as some official documents do). Every occurrence of a surface string at word
boundaries is annotated (longest first). A concept name None means MeSH id -1; a tuple of names
is a composite mention. The IOB samples of BC5CDR-Chem/Dise are derived from these documents,
as the official IOB files derive from the CDR corpus.
"""

C, D = "Chemical", "Disease"

DOCS = {
    "train": [
        {
            "pmid": "99000101",
            "title": "Acute kidney injury after high-dose methotrexate in adolescents with osteosarcoma.",
            "abstract": (
                "High-dose methotrexate is a cornerstone of osteosarcoma therapy but may precipitate acute kidney injury. "
                "We reviewed 48 courses given to 15 adolescents. Serum creatinine rose by more than 50% after 9 courses, "
                "and delayed methotrexate clearance was associated with mucositis and neutropenia. "
                "Leucovorin rescue was intensified in all affected patients, and renal function recovered within two weeks."
            ),
            "mentions": {
                "methotrexate": (C, "methotrexate"), "osteosarcoma": (D, "osteosarcoma"),
                "Acute kidney injury": (D, "acute kidney injury"), "acute kidney injury": (D, "acute kidney injury"),
                "creatinine": (C, "creatinine"), "mucositis": (D, "mucositis"), "neutropenia": (D, "neutropenia"),
                "Leucovorin": (C, "leucovorin"),
            },
            "relations": [("methotrexate", "acute kidney injury"), ("methotrexate", "mucositis"), ("methotrexate", "neutropenia")],
        },
        {
            "pmid": "99000102",
            "title": "Renal and hepatic toxicity of a novel platinum analogue in a rat model.",
            "abstract": (
                "The platinum analogue SPX-17 was compared with cisplatin in male rats. "
                "Both agents produced renal and hepatic toxicity, but SPX-17 caused less tubular necrosis. "
                "Co-administration of N-acetylcysteine reduced serum aminotransferase levels. No seizures were observed."
            ),
            "mentions": {
                "platinum": (C, "platinum"), "SPX-17": (C, "SPX-17"), "cisplatin": (C, "cisplatin"),
                "Renal and hepatic toxicity": (D, ("renal toxicity", "hepatic toxicity"), ("Renal toxicity", "hepatic toxicity")),
                "renal and hepatic toxicity": (D, ("renal toxicity", "hepatic toxicity"), ("renal toxicity", "hepatic toxicity")),
                "tubular necrosis": (D, "tubular necrosis"), "N-acetylcysteine": (C, "acetylcysteine"), "seizures": (D, "seizures"),
            },
            "relations": [
                ("SPX-17", "renal toxicity"), ("SPX-17", "hepatic toxicity"), ("cisplatin", "renal toxicity"),
                ("cisplatin", "hepatic toxicity"), ("cisplatin", "tubular necrosis"),
            ],
        },
        {
            "pmid": "99000103",
            "title": "Visual hallucinations associated with oral voriconazole.",
            "abstract": (
                "A 62-year-old woman receiving voriconazole for invasive aspergillosis developed visual hallucinations and "
                "photopsia on day three. Plasma voriconazole concentrations were above the therapeutic range. "
                "Symptoms resolved after switching to posaconazole. "
                "Drug-induced perceptual disturbance should be considered in patients on azole antifungals."
            ),
            "mentions": {
                "voriconazole": (C, "voriconazole"), "invasive aspergillosis": (D, "invasive aspergillosis"),
                "Visual hallucinations": (D, "hallucinations"), "visual hallucinations": (D, "hallucinations"),
                "photopsia": (D, None), "posaconazole": (C, "posaconazole"), "perceptual disturbance": (D, None),
                "azole": (C, "azoles"),
            },
            "relations": [("voriconazole", "hallucinations")],
            "trailing_tab": True,
        },
        {
            "pmid": "99000104",
            "title": "Serum magnesium levels in patients with chronic heart failure: a cross-sectional study.",
            "abstract": (
                "Hypomagnesemia is common in chronic heart failure and may predispose to ventricular arrhythmias. "
                "We measured serum magnesium in 210 outpatients. Low magnesium was associated with loop diuretic use, "
                "particularly furosemide, but not with spironolactone. Magnesium supplementation trials are warranted."
            ),
            "mentions": {
                "magnesium": (C, "magnesium"), "Magnesium": (C, "magnesium"), "Hypomagnesemia": (D, "hypomagnesemia"),
                "chronic heart failure": (D, "heart failure"), "ventricular arrhythmias": (D, "ventricular arrhythmias"),
                "furosemide": (C, "furosemide"), "spironolactone": (C, "spironolactone"),
            },
            "relations": [("furosemide", "hypomagnesemia")],
        },
        {
            "pmid": "99000105",
            "title": "Caffeine consumption and the risk of Parkinson disease: a prospective cohort.",
            "abstract": (
                "Higher caffeine intake has been linked to a lower incidence of Parkinson disease. "
                "In 3,400 adults followed for twelve years, coffee drinkers had fewer new diagnoses. "
                "Adjustment for smoking and nicotine exposure did not change the estimate."
            ),
            "mentions": {
                "Caffeine": (C, "caffeine"), "caffeine": (C, "caffeine"), "Parkinson disease": (D, "Parkinson disease"),
                "nicotine": (C, "nicotine"),
            },
            "relations": [],
        },
        {
            "pmid": "99000106",
            "title": "Lithium-induced nephrogenic diabetes insipidus reversed by amiloride.",
            "abstract": (
                "A 45-year-old man on long-term lithium therapy for bipolar disorder presented with polyuria and polydipsia. "
                "Water deprivation testing confirmed nephrogenic diabetes insipidus. "
                "Amiloride reduced urine output by 40%, and hypernatremia did not recur."
            ),
            "mentions": {
                "Lithium": (C, "lithium"), "lithium": (C, "lithium"),
                "nephrogenic diabetes insipidus": (D, "nephrogenic diabetes insipidus"),
                "amiloride": (C, "amiloride"), "Amiloride": (C, "amiloride"), "bipolar disorder": (D, "bipolar disorder"),
                "polyuria": (D, "polyuria"), "polydipsia": (D, "polydipsia"), "hypernatremia": (D, "hypernatremia"),
            },
            "relations": [("lithium", "nephrogenic diabetes insipidus"), ("lithium", "polyuria"), ("lithium", "polydipsia")],
        },
    ],
    "dev": [
        {
            "pmid": "99000201",
            "title": "Rhabdomyolysis in a patient taking simvastatin and clarithromycin.",
            "abstract": (
                "We describe a 70-year-old man who developed rhabdomyolysis and acute renal failure four days after "
                "clarithromycin was added to simvastatin. Creatine kinase peaked at 48,000 U/L. "
                "Clarithromycin inhibits hepatic metabolism and raises statin exposure. "
                "Both drugs were withdrawn and hemodialysis was not required."
            ),
            "mentions": {
                "Rhabdomyolysis": (D, "rhabdomyolysis"), "rhabdomyolysis": (D, "rhabdomyolysis"),
                "simvastatin": (C, "simvastatin"), "clarithromycin": (C, "clarithromycin"), "Clarithromycin": (C, "clarithromycin"),
                "acute renal failure": (D, "acute kidney injury"), "statin": (C, "statins"),
            },
            "relations": [
                ("simvastatin", "rhabdomyolysis"), ("clarithromycin", "rhabdomyolysis"),
                ("simvastatin", "acute kidney injury"), ("clarithromycin", "acute kidney injury"),
            ],
        },
        {
            "pmid": "99000202",
            "title": "Tamoxifen and endometrial changes in women treated for breast or ovarian cancer.",
            "abstract": (
                "Endometrial hyperplasia was found in 14 of 120 women receiving tamoxifen. "
                "Two women developed endometrial carcinoma. "
                "Letrozole was not associated with endometrial thickening."
            ),
            "mentions": {
                "Tamoxifen": (C, "tamoxifen"), "tamoxifen": (C, "tamoxifen"),
                "breast or ovarian cancer": (D, ("breast cancer", "ovarian cancer"), ("breast cancer", "ovarian cancer")),
                "Endometrial hyperplasia": (D, "endometrial hyperplasia"), "endometrial carcinoma": (D, "endometrial carcinoma"),
                "Letrozole": (C, "letrozole"), "endometrial thickening": (D, None),
            },
            "relations": [("tamoxifen", "endometrial hyperplasia"), ("tamoxifen", "endometrial carcinoma")],
        },
        {
            "pmid": "99000203",
            "title": "Bupivacaine cardiotoxicity treated with lipid emulsion.",
            "abstract": (
                "Accidental intravascular injection of bupivacaine during a nerve block caused seizures followed by "
                "ventricular fibrillation. Intravenous lipid emulsion restored a perfusing rhythm within ten minutes. "
                "The patient recovered without neurological deficit."
            ),
            "mentions": {
                "Bupivacaine": (C, "bupivacaine"), "bupivacaine": (C, "bupivacaine"), "cardiotoxicity": (D, "cardiotoxicity"),
                "seizures": (D, "seizures"), "ventricular fibrillation": (D, "ventricular fibrillation"),
                "lipid emulsion": (C, "fat emulsions"), "neurological deficit": (D, None),
            },
            "relations": [("bupivacaine", "cardiotoxicity"), ("bupivacaine", "seizures"), ("bupivacaine", "ventricular fibrillation")],
        },
        {
            "pmid": "99000204",
            "title": "Isoniazid hepatotoxicity in latent tuberculosis treatment.",
            "abstract": (
                "Among 890 adults given isoniazid for latent tuberculosis, 21 developed hepatitis with jaundice. "
                "Rifampicin-based regimens caused fewer hepatic events. "
                "Pyridoxine was co-prescribed to prevent peripheral neuropathy."
            ),
            "mentions": {
                "Isoniazid": (C, "isoniazid"), "isoniazid": (C, "isoniazid"), "hepatotoxicity": (D, "hepatotoxicity"),
                "tuberculosis": (D, "tuberculosis"), "hepatitis": (D, "hepatitis"), "jaundice": (D, "jaundice"),
                "Rifampicin": (C, "rifampin"), "Pyridoxine": (C, "pyridoxine"), "peripheral neuropathy": (D, "peripheral neuropathy"),
            },
            "relations": [("isoniazid", "hepatotoxicity"), ("isoniazid", "hepatitis"), ("isoniazid", "jaundice")],
        },
        {
            "pmid": "99000205",
            "title": "Vitamin D status and asthma control in school-age children.",
            "abstract": (
                "Serum 25-hydroxyvitamin D was measured in 310 children with asthma. "
                "Lower concentrations were associated with more frequent exacerbations requiring prednisolone. "
                "Supplementation with cholecalciferol is being tested in a randomized trial."
            ),
            "mentions": {
                "Vitamin D": (C, "vitamin D"), "asthma": (D, "asthma"), "25-hydroxyvitamin D": (C, "25-hydroxyvitamin D"),
                "prednisolone": (C, "prednisolone"), "cholecalciferol": (C, "cholecalciferol"),
            },
            "relations": [],
        },
    ],
    "test": [
        {
            "pmid": "99000301",
            "title": "Cardiorespiratory arrest after rapid intravenous phenytoin.",
            "abstract": (
                "Phenytoin given faster than 50 mg per minute can cause hypotension and bradycardia. "
                "We report an 81-year-old woman with status epilepticus who suffered cardiorespiratory arrest during a loading "
                "infusion. Fosphenytoin may be a safer alternative in elderly patients."
            ),
            "mentions": {
                "phenytoin": (C, "phenytoin"), "Phenytoin": (C, "phenytoin"),
                # composite without the 7th column (the official files have both kinds)
                "Cardiorespiratory arrest": (D, ("heart arrest", "respiratory arrest")),
                "cardiorespiratory arrest": (D, ("heart arrest", "respiratory arrest")),
                "hypotension": (D, "hypotension"), "bradycardia": (D, "bradycardia"),
                "status epilepticus": (D, "status epilepticus"), "Fosphenytoin": (C, "fosphenytoin"),
            },
            "relations": [
                ("phenytoin", "heart arrest"), ("phenytoin", "respiratory arrest"), ("phenytoin", "hypotension"),
                ("phenytoin", "bradycardia"),
            ],
        },
        {
            "pmid": "99000302",
            "title": "Amiodarone-induced pulmonary fibrosis: a case series.",
            "abstract": (
                "Five patients developed dyspnoea and pulmonary fibrosis after 8 to 30 months of amiodarone therapy for "
                "atrial fibrillation. Thyroid dysfunction was present in two. "
                "Withdrawal of amiodarone and treatment with prednisone led to partial radiological improvement."
            ),
            "mentions": {
                "Amiodarone": (C, "amiodarone"), "amiodarone": (C, "amiodarone"), "pulmonary fibrosis": (D, "pulmonary fibrosis"),
                "dyspnoea": (D, "dyspnea"), "atrial fibrillation": (D, "atrial fibrillation"),
                "Thyroid dysfunction": (D, "thyroid diseases"), "prednisone": (C, "prednisone"),
            },
            "relations": [("amiodarone", "pulmonary fibrosis"), ("amiodarone", "dyspnea"), ("amiodarone", "thyroid diseases")],
        },
        {
            "pmid": "99000303",
            "title": "Liver or kidney injury associated with valproic acid in children.",
            "abstract": (
                "We reviewed 95 children treated with valproic acid for epilepsy. "
                "Seven developed liver or kidney injury, and one had hyperammonemic encephalopathy. "
                "L-carnitine was given to four children. "
                "Transient thrombocytopenia was noted but did not require transfusion."
            ),
            "mentions": {
                "valproic acid": (C, "valproic acid"), "epilepsy": (D, "epilepsy"),
                "Liver or kidney injury": (D, ("liver injury", "kidney injury"), ("Liver injury", "kidney injury")),
                "liver or kidney injury": (D, ("liver injury", "kidney injury"), ("liver injury", "kidney injury")),
                "hyperammonemic encephalopathy": (D, "hyperammonemic encephalopathy"), "L-carnitine": (C, "carnitine"),
                "thrombocytopenia": (D, "thrombocytopenia"),
            },
            "relations": [
                ("valproic acid", "liver injury"), ("valproic acid", "kidney injury"),
                ("valproic acid", "hyperammonemic encephalopathy"), ("valproic acid", "thrombocytopenia"),
            ],
        },
        {
            "pmid": "99000304",
            "title": "Metformin use and survival in colorectal cancer.",
            "abstract": (
                "In a registry of 2,150 patients with colorectal cancer and type 2 diabetes, metformin users had longer "
                "overall survival than users of insulin. The association persisted after adjustment for tumour stage. "
                "Metformin-related lactic acidosis was not observed."
            ),
            "mentions": {
                "Metformin": (C, "metformin"), "metformin": (C, "metformin"), "colorectal cancer": (D, "colorectal cancer"),
                "type 2 diabetes": (D, "type 2 diabetes"), "insulin": (C, "insulin"), "lactic acidosis": (D, "lactic acidosis"),
                "tumour": (D, None),
            },
            "relations": [],
        },
        {
            "pmid": "99000305",
            "title": "Neuroleptic malignant syndrome after haloperidol in a patient with delirium.",
            "abstract": (
                "A 58-year-old man with alcohol withdrawal delirium received intramuscular haloperidol and developed "
                "hyperthermia, rigidity and autonomic instability. Dantrolene and bromocriptine were started. "
                "His muscle enzymes normalised within a week."
            ),
            "mentions": {
                "Neuroleptic malignant syndrome": (D, "neuroleptic malignant syndrome"), "haloperidol": (C, "haloperidol"),
                "delirium": (D, "delirium"), "alcohol withdrawal delirium": (D, "alcohol withdrawal delirium"),
                "hyperthermia": (D, "hyperthermia"), "rigidity": (D, "muscle rigidity"), "autonomic instability": (D, None),
                "Dantrolene": (C, "dantrolene"), "bromocriptine": (C, "bromocriptine"),
            },
            "relations": [
                ("haloperidol", "neuroleptic malignant syndrome"), ("haloperidol", "hyperthermia"), ("haloperidol", "muscle rigidity"),
            ],
        },
        {
            "pmid": "99000306",
            "title": "Cocaine-associated chest pain and myocardial infarction.",
            "abstract": (
                "Of 246 patients presenting with chest pain after cocaine use, 6% had myocardial infarction. "
                "Concomitant use of ethanol increased the risk. "
                "Benzodiazepines and nitroglycerin relieved symptoms in most patients."
            ),
            "mentions": {
                "Cocaine": (C, "cocaine"), "cocaine": (C, "cocaine"), "chest pain": (D, "chest pain"),
                "myocardial infarction": (D, "myocardial infarction"), "ethanol": (C, "ethanol"),
                "Benzodiazepines": (C, "benzodiazepines"), "nitroglycerin": (C, "nitroglycerin"),
            },
            "relations": [("cocaine", "chest pain"), ("cocaine", "myocardial infarction")],
            "trailing_tab": True,
        },
        {
            "pmid": "99000307",
            "title": "Gentamicin ototoxicity in neonates with sepsis.",
            "abstract": (
                "Hearing was screened in 402 neonates who received gentamicin for suspected sepsis. "
                "Sensorineural hearing loss was found in 11, all with trough concentrations above 2 mg/L. "
                "Vancomycin co-treatment did not change the risk."
            ),
            "mentions": {
                "Gentamicin": (C, "gentamicin"), "gentamicin": (C, "gentamicin"), "ototoxicity": (D, "ototoxicity"),
                "sepsis": (D, "sepsis"), "Sensorineural hearing loss": (D, "sensorineural hearing loss"),
                "Vancomycin": (C, "vancomycin"),
            },
            "relations": [("gentamicin", "ototoxicity"), ("gentamicin", "sensorineural hearing loss")],
        },
        {
            "pmid": "99000308",
            "title": "Serotonin syndrome with linezolid and sertraline.",
            "abstract": (
                "A 73-year-old woman taking sertraline for depression was given linezolid for a resistant wound infection. "
                "Within 24 hours she developed agitation, tremor and myoclonus consistent with serotonin syndrome. "
                "Cyproheptadine was given and symptoms resolved."
            ),
            "mentions": {
                "Serotonin syndrome": (D, "serotonin syndrome"), "serotonin syndrome": (D, "serotonin syndrome"),
                "linezolid": (C, "linezolid"), "sertraline": (C, "sertraline"), "depression": (D, "depression"),
                "wound infection": (D, "wound infection"), "agitation": (D, "agitation"), "tremor": (D, "tremor"),
                "myoclonus": (D, "myoclonus"), "Cyproheptadine": (C, "cyproheptadine"),
            },
            "relations": [("linezolid", "serotonin syndrome"), ("sertraline", "serotonin syndrome"), ("linezolid", "tremor")],
        },
    ],
}

# Chemicals given supplementary-concept ids (C9xxxxx), as MeSH does for new compounds.
SUPPLEMENTARY = {"SPX-17", "25-hydroxyvitamin D"}
