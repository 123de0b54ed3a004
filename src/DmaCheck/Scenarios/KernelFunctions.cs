namespace DmaCheck.Scenarios;

/// <summary>The kernel functions a scenario statement may call (the binder's cases), for "did you mean" on a typo.</summary>
public static class KernelFunctions
{
    public static IReadOnlyList<string> Known { get; } =
    [
        "dma_alloc_coherent", "dma_alloc_attrs", "dma_free_coherent", "dma_free_attrs", "dma_mmap_coherent", "dma_mmap_attrs",
        "dma_get_sgtable", "dma_get_sgtable_attrs", "sg_page", "sg_phys", "kmap_local_page", "kmalloc", "kfree", "alloc_pages",
        "__free_pages", "dma_map_single", "dma_map_page", "dma_map_single_attrs", "dma_map_page_attrs", "dma_unmap_single",
        "dma_unmap_page", "dma_unmap_single_attrs", "dma_unmap_page_attrs", "dma_sync_single_for_cpu", "dma_sync_single_for_device",
        "dma_mapping_error", "sg_alloc_table", "sg_set_buf", "sg_set_page", "sg_free_table", "sg_dma_address", "sg_dma_len",
        "dma_map_sg", "dma_map_sg_attrs", "dma_map_sgtable", "dma_unmap_sg", "dma_unmap_sg_attrs", "dma_unmap_sgtable",
        "dma_sync_sg_for_cpu", "dma_sync_sg_for_device", "dma_sync_sgtable_for_cpu", "dma_sync_sgtable_for_device",
        "dma_map_resource", "dma_unmap_resource", "virt_to_phys", "stack_buffer", "static_const", "vmalloc_to_page", "offset_in_page",
    ];

    /// <summary>The message for a call of a function the binder does not know: the nearest names, not all of them.</summary>
    public static string Unknown(string name)
    {
        var hint = Suggestions.DidYouMean(name, Known, 3) ?? "docs/scenario-language.md lists every function dmacheck models";
        return $"unknown or unmodelled kernel function '{name}' ({hint})";
    }
}
